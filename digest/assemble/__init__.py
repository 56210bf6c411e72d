"""Assembling the edition of a day: the file, queued reads and feed reads."""
