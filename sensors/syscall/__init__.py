"""The eBPF syscall sensor: CO-RE program, libbpf loader, ring reader, process/fd state."""
