"""The command line: the typer app, the flags shared by every measuring command, the terminal
table of rows, and ``commands/`` with one module per command."""
