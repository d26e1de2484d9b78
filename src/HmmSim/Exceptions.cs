namespace HmmSim;

/// <summary>A BUG()/VM_BUG_ON in the modelled kernel, or a finding of the invariant checker.</summary>
public class KernelBugException : Exception
{
    public KernelBugException() { }
    public KernelBugException(string message) : base(message) { }
    public KernelBugException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A system call or open() that the modelled kernel failed with an errno.</summary>
public class ErrnoException : Exception
{
    public ErrnoException(Errno errno) : this(errno, $"failed with {errno}") { }
    public ErrnoException(Errno errno, string message) : base(message) => Errno = errno;
    public Errno Errno { get; }
}

/// <summary>SIGSEGV delivered to the process for a user access the mapping forbids.</summary>
public class SegmentationFaultException : Exception
{
    public SegmentationFaultException(ulong address) : this(address, $"SIGSEGV at 0x{address:x}") { }
    public SegmentationFaultException(ulong address, string message) : base(message) => Address = address;
    public ulong Address { get; }
}

/// <summary>SIGBUS: an access to a file mapping beyond end of file, or a hugetlb fault with no pool page.</summary>
public class BusErrorException : SegmentationFaultException
{
    public BusErrorException(ulong address, string message) : base(address, message) { }
}
