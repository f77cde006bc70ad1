"""Telegram: reminders, digests and owner alerts in a chat, and one-tap touches back."""
