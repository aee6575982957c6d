"""The tasks that ship with fleet; `fleet run NAME` loads NAME.py from here by path."""
