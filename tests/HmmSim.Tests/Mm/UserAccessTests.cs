namespace HmmSim.Tests.Mm;

/// <summary>The CPU's reads and writes of user memory, which walk a PMD at a time: spans that cross
/// PMDs, a THP and small pages side by side, pages that fault part-way through a span, and a fault that
/// cannot be handled after part of the span was written.</summary>
public class UserAccessTests
{
    private const ulong Pmd = 2UL << 20;

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(i * 7 + (i >> 12) + seed);
        return data;
    }

    /// <summary>Maps three PMDs, PMD-aligned: the first gets a THP, the other two small pages.</summary>
    private static ulong MapThreePmds(Process p, out ulong raw)
    {
        Assert.Equal(Errno.None, p.Mmap(0, 4 * Pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out raw));
        ulong a = (raw + Pmd - 1) & ~(Pmd - 1);
        Assert.Equal(Errno.None, p.Madvise(a, Pmd, Advice.HugePage));
        Assert.Equal(Errno.None, p.Madvise(a + Pmd, 2 * Pmd, Advice.NoHugePage));
        return a;
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AnUnalignedSpanOverATHPAndSmallPagesReadsBackExactly(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MapThreePmds(p, out _);
        // Populate the THP first, whole, so the span below starts inside a huge PMD.
        p.Write(a, Bytes((int)Pmd, 1));
        ulong start = a + Pmd - 5000;
        var data = Bytes((int)Pmd + 12345, 2);
        p.Write(start, data);
        var back = new byte[data.Length];
        p.Read(start, back);
        Assert.Equal(data, back);
        // The bytes before the span kept the first write.
        var head = new byte[64];
        p.Read(start - 64, head);
        Assert.Equal(Bytes((int)Pmd, 1).AsSpan((int)(Pmd - 5000 - 64), 64).ToArray(), head);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void PagesThatFaultPartWayThroughASpanAreFaultedInAndTheRestOfTheSpanCompletes(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MapThreePmds(p, out _);
        ulong small = a + Pmd;
        // Every other small page present: the span's walk stops at each hole and faults it in.
        for (ulong o = 0; o < Pmd; o += 2 * 4096)
            p.WriteInt32(small + o, 1);
        var data = Bytes((int)Pmd, 3);
        p.Write(small, data);
        var back = new byte[data.Length];
        p.Read(small, back);
        Assert.Equal(data, back);
        // A page sent to the device in the middle of the span comes back on the CPU's read.
        using var dev = p.OpenDmirror(0);
        var mirror = new byte[4096 * 4];
        Assert.Equal(Errno.None, dev.MigrateToDevice(small + 100 * 4096, 4, mirror).Error);
        Assert.Equal(data.AsSpan(100 * 4096, mirror.Length).ToArray(), mirror);
        Array.Clear(back);
        p.Read(small, back);
        Assert.Equal(data, back);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AWriteThatReachesAPageItMayNotWriteStopsThereWithSigsegv(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MapThreePmds(p, out _);
        ulong small = a + Pmd;
        ulong readOnly = small + 10 * 4096;
        Assert.Equal(Errno.None, p.Mprotect(readOnly, 4096, Prot.Read));
        var data = Bytes(20 * 4096, 4);
        var e = Assert.Throws<SegmentationFaultException>(() => p.Write(small, data));
        Assert.Equal(readOnly, e.Address);
        // The pages before it were written; the read-only page and those after it were not.
        var back = new byte[20 * 4096];
        p.Read(small, back);
        Assert.Equal(data.AsSpan(0, 10 * 4096).ToArray(), back.AsSpan(0, 10 * 4096).ToArray());
        Assert.True(back.AsSpan(10 * 4096).IndexOfAnyExcept((byte)0) < 0);
    }
}
