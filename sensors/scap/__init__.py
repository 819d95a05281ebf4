"""Reader of libscap capture files (.scap): Falco and sysdig captures as falconet syscall events."""
