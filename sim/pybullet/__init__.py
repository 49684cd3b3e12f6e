"""PyBullet engine backend: the Panda scene in a private DIRECT physics client with TinyRenderer images."""
