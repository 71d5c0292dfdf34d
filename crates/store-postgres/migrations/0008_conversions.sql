-- Conversions are credited to the journey's last email or conversion webhook before the goal.

ALTER TABLE journeys ADD COLUMN conversion_step text;
