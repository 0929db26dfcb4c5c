"""The ``kubelite`` command line: the face on top of the library, which may launch components."""
