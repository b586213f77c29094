"""The shipped scenario library (TOML files); a package so wheels include the files."""
