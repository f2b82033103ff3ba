"""The records service: council systems feed source records; the gateway reads one child at a time."""
