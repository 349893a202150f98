"""`qtctl report`: doctor's result for cron and timers, in the formats monitoring reads."""
