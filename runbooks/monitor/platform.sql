-- Fixture for monitor.platform: the platform tables with a year of history (the maintenance
-- fixture): quiet today, nothing for the watch to act on.
\ir ../maintenance/platform.sql
