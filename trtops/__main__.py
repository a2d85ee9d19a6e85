from trtops.cli import entry

entry()
