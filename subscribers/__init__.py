"""The audience: who may receive mail, their consent and status.

This is the lower layer of the project: ``subscribers`` never imports
``digest``. It is filled in by the subscribers issue.
"""
