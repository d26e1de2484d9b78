namespace HmmSim.Kernel;

/// <summary>What leaves the kernel as an exception: an oops (BUG(), VM_BUG_ON, a WARN with
/// panic_on_warn), or a signal to the current task (SIGSEGV, SIGBUS). The kernel does not know the
/// types its user sees; the composition root installs factories for the contract's exceptions at
/// start-up, and until then the kernel's own stand-ins are thrown.</summary>
internal static class KernelExceptions
{
    public static Func<string, Exception> Oops { get; set; } = m => new KernelOopsException(m);
    public static Func<ulong, string, Exception> Sigsegv { get; set; } = (a, m) => new KernelSignalException(a, m);
    public static Func<ulong, string, Exception> Sigbus { get; set; } = (a, m) => new KernelSignalException(a, m);
    public static Func<Errno, string, Exception> ErrnoFailure { get; set; } = (e, m) => new KernelErrnoException(e, m);
}

/// <summary>The kernel's own oops, thrown when no composition root installed another.</summary>
internal sealed class KernelOopsException(string message) : Exception(message);

/// <summary>A signal to the current task, when no composition root installed another.</summary>
internal sealed class KernelSignalException(ulong address, string message) : Exception(message)
{
    public ulong Address { get; } = address;
}

/// <summary>An errno failure, when no composition root installed another.</summary>
internal sealed class KernelErrnoException(Errno errno, string message) : Exception(message)
{
    public Errno Errno { get; } = errno;
}
