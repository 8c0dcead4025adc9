"""Remote consoles: the tokens that open them and the noVNC proxy (nova-novncproxy).

The compute API hands out a console URL carrying a fresh token
(:mod:`tokens`); the proxy service (:mod:`service`, :mod:`proxy`) serves
noVNC's pages and relays a websocket that shows a valid token to the
guest's VNC server.
"""
