package main

// sysSetns is setns(2) on linux/amd64; the syscall package does not name it there.
const sysSetns = 308
