from emcore.cli import command

command()
