"""A call's media on asyncio: audio and video loops, RTCP reports and ringing, over an injected RTP transport."""
