"""FireWorks workflows of a campaign: the Fireworks of every round and the Firetask that hands
candidates to the oracle as detours (it builds workflows, so it lives with the builders)."""
