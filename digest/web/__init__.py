"""The web server of ``digest serve``: public pages now, the editors' app later."""
