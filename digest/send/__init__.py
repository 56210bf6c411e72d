"""Sending: composing each message, the transports, and the publishing of an edition."""
