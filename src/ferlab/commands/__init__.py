"""The command layer: the `ferlab` command, a thin shell over the library. Each module parses a
command's options, calls the library (importing it inside the command, so `ferlab --help`
stays light) and prints its messages; `cli` turns errors into one line and an exit status.
Nothing below this layer imports it.
"""
