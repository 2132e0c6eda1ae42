"""The `shopflow` command: argparse lives here and nowhere else, one module per area.

A handler parses its arguments, calls one use-case function and prints the answer.
"""
