namespace HmmSim.Cli.Scenarios;

/// <summary>What a step does: one record per operation of docs/scenarios.md, holding only that
/// operation's fields. <see cref="ScenarioFile"/> makes them from the "op" name; the runner dispatches
/// on the record's type.</summary>
internal abstract record ScenarioOp
{
    /// <summary>The "op" name as the file writes it, for messages and reports.</summary>
    public abstract string Name { get; }
}

/// <summary>A step over [At, At+Length) of the process's address space.</summary>
internal abstract record RangeOp(AddressExpr At, ulong Length) : ScenarioOp;

internal sealed record MmapOp(string? MappingName, AddressExpr? At, ulong Length, Prot Prot, MapFlags Flags, string? File, ulong Offset, ulong Align) : ScenarioOp
{
    public override string Name => "mmap";
}

internal sealed record MunmapOp(AddressExpr At, ulong Length) : RangeOp(At, Length)
{
    public override string Name => "munmap";
}

internal sealed record MprotectOp(AddressExpr At, ulong Length, Prot Prot) : RangeOp(At, Length)
{
    public override string Name => "mprotect";
}

internal sealed record MadviseOp(AddressExpr At, ulong Length, Advice Advice) : RangeOp(At, Length)
{
    public override string Name => "madvise";
}

/// <summary>MappingName, when set, is the mapping that names the result (the old one's name by default).</summary>
internal sealed record MremapOp(AddressExpr At, ulong OldLength, ulong NewLength, MremapFlags Flags, AddressExpr? NewAt, string? MappingName) : ScenarioOp
{
    public override string Name => "mremap";
}

internal sealed record ForkOp(string Child) : ScenarioOp
{
    public override string Name => "fork";
}

internal sealed record ExitOp : ScenarioOp
{
    public override string Name => "exit";
}

/// <summary>A CPU load or store: a SIGSEGV is an outcome the step may expect.</summary>
internal abstract record CpuAccessOp : ScenarioOp;

internal sealed record ReadOp(AddressExpr At, ulong Length, string Into) : CpuAccessOp
{
    public override string Name => "read";
}

/// <summary>Writes Bytes, or when null the named Buffer.</summary>
internal sealed record WriteOp(AddressExpr At, byte[]? Bytes, string? Buffer) : CpuAccessOp
{
    public override string Name => "write";
}

/// <summary>A pattern over process memory (At) or a named buffer (Buffer at Offset); exactly one of
/// At and Buffer is set. Length null (verify of a buffer only) means the rest of the buffer.</summary>
internal abstract record PatternOp(AddressExpr? At, string? Buffer, ulong Offset, ulong? Length, FillPattern Pattern) : CpuAccessOp;

internal sealed record FillOp(AddressExpr? At, string? Buffer, ulong Offset, ulong? Length, FillPattern Pattern) : PatternOp(At, Buffer, Offset, Length, Pattern)
{
    public override string Name => "fill";
}

internal sealed record VerifyOp(AddressExpr? At, string? Buffer, ulong Offset, ulong? Length, FillPattern Pattern) : PatternOp(At, Buffer, Offset, Length, Pattern)
{
    public override string Name => "verify";
}

internal sealed record DmirrorOpenOp(int Unit, string Handle) : ScenarioOp
{
    public override string Name => "dmirror.open";
}

internal sealed record DmirrorCloseOp(string Handle) : ScenarioOp
{
    public override string Name => "dmirror.close";
}

internal sealed record DmirrorReleaseOp(string Handle) : ScenarioOp
{
    public override string Name => "dmirror.release";
}

internal sealed record DmirrorFlagsOp(string Handle, DmirrorFlags Flags) : ScenarioOp
{
    public override string Name => "dmirror.flags";
}

/// <summary>The test_hmm ioctls that act on a range of pages (HMM_DMIRROR_READ ... HMM_DMIRROR_CHECK_EXCLUSIVE).</summary>
internal enum DmirrorIoctl
{
    Read,
    Write,
    MigrateToDev,
    MigrateToSys,
    Snapshot,
    Exclusive,
    CheckExclusive,
}

/// <summary>A range ioctl; Buffer is null for the ioctls that carry no buffer (migrate_to_sys, check_exclusive).</summary>
internal sealed record DmirrorRangeOp(DmirrorIoctl Ioctl, string Handle, AddressExpr At, ulong Pages, string? Buffer) : ScenarioOp
{
    public override string Name => Ioctl switch
    {
        DmirrorIoctl.Read => "dmirror.read",
        DmirrorIoctl.Write => "dmirror.write",
        DmirrorIoctl.MigrateToDev => "dmirror.migrate_to_dev",
        DmirrorIoctl.MigrateToSys => "dmirror.migrate_to_sys",
        DmirrorIoctl.Snapshot => "dmirror.snapshot",
        DmirrorIoctl.Exclusive => "dmirror.exclusive",
        _ => "dmirror.check_exclusive",
    };

    /// <summary>Bytes the ioctl's buffer holds: one per page for a snapshot, the pages' contents otherwise.</summary>
    public ulong BufferBytes => Ioctl == DmirrorIoctl.Snapshot ? Pages : Pages * 4096;
}

internal sealed record RepeatOp(int Count, IReadOnlyList<ScenarioStep> Steps) : ScenarioOp
{
    public override string Name => "repeat";
}

/// <summary>Prints the page-table state of each page of [At, At+Length) (docs/scenarios.md "dump").</summary>
internal sealed record DumpOp(AddressExpr At, ulong Length) : RangeOp(At, Length)
{
    public override string Name => "dump";

    /// <summary>The most pages one dump prints: a dump is for reading, not for a whole heap.</summary>
    public const ulong MaxPages = 4096;
}
