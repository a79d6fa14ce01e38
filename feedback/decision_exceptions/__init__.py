"""Decision exceptions: the rules that raise them, their SLAs, and their resolution."""
