"""`hilobench profile`: where the time of one step goes, by module, by kind and by operator."""
