class FerlabError(Exception):
    """A problem with the user's input or files: the CLI prints it as one line and exits 2."""
