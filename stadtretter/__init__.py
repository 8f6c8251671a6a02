"""The `stadtretter` command line: the top floor beside api/."""
