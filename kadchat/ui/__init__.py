"""The user interfaces: the console and the Tk window, both over kadchat.model.ChatBackend."""
