"""The RL sizing agent: learns position-size multipliers from real closed trades only."""
