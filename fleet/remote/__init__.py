"""Programs that fleet sends to hosts to run there (read as text, never imported on the control side)."""
