"""A bounded soak of fleet on OpenSSH namespace hosts under faults: `python3 -m benchmarks.soak`.

    plan.py          the fault schedule, what each iteration must report, the leak verdict (pure)
    procfs.py        what a process and the bed's sshds hold, read from /proc
    faults.py        sshd killed and restarted, packets dropped (nftables) on the bed
    phases.py        the in-process and --persist loops
    daemon_probe.py  fleet's daemon with a SIGUSR1 window onto its tasks and channels
    report.py        the tables and the verdict's lines
"""
