"""What the end-to-end comparisons share: the model files of the command
line, and running a command for its text."""
import os
import subprocess

# Warnings that fail a generated file: it must compile cleanly.
WARNINGS = ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Werror']


def model_files(paths):
    """The .cnn files named, and those in the directories named (sorted)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith('.cnn'))
        else:
            files.append(p)
    return files


def run(cmd, timeout=900, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
