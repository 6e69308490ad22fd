"""Publish and Execute: agents (persona, toolbox, memory) and the cards that advertise them."""
