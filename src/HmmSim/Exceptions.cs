namespace HmmSim;

/// <summary>A BUG()/VM_BUG_ON in the modelled kernel, or a finding of the invariant checker.</summary>
public class KernelBugException : Exception
{
    /// <summary>A BUG with no message.</summary>
    public KernelBugException() { }
    /// <summary>A BUG with the message the kernel would print in the oops.</summary>
    public KernelBugException(string message) : base(message) { }
    /// <summary>A BUG caused by <paramref name="inner"/>.</summary>
    public KernelBugException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A system call or open() that the modelled kernel failed with an errno.</summary>
public class ErrnoException : Exception
{
    /// <summary>A failure with <paramref name="errno"/> and the message "failed with EXXX".</summary>
    public ErrnoException(Errno errno) : this(errno, $"failed with {errno}") { }
    /// <summary>A failure with <paramref name="errno"/> and a message saying what failed.</summary>
    public ErrnoException(Errno errno, string message) : base(message) => Errno = errno;
    /// <summary>The error number the kernel returned (as -errno).</summary>
    public Errno Errno { get; }
}

/// <summary>SIGSEGV delivered to the process for a user access the mapping forbids.</summary>
public class SegmentationFaultException : Exception
{
    /// <summary>SIGSEGV for a user access at <paramref name="address"/>.</summary>
    public SegmentationFaultException(ulong address) : this(address, $"SIGSEGV at 0x{address:x}") { }
    /// <summary>SIGSEGV for a user access at <paramref name="address"/>, with the reason.</summary>
    public SegmentationFaultException(ulong address, string message) : base(message) => Address = address;
    /// <summary>siginfo si_addr: the user virtual address of the faulting access.</summary>
    public ulong Address { get; }
}

/// <summary>SIGBUS: an access to a file mapping beyond end of file, or a hugetlb fault with no pool page.</summary>
public class BusErrorException : SegmentationFaultException
{
    /// <summary>SIGBUS for a user access at <paramref name="address"/>, with the reason.</summary>
    public BusErrorException(ulong address, string message) : base(address, message) { }
}
