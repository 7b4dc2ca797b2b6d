"""Sub-commands beyond ``layer`` / ``model``: each module here defines ``register(app)``.

The CLI discovers these modules, so a new command is one new file.
"""
