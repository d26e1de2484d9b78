namespace HmmSim.Tests.Mm;

/// <summary>Checks that scale: a CPU access checks only what it touched, and the full walk at teardown
/// still finds what the local check cannot see.</summary>
public class LocalInvariantCheckTests
{
    private static ref HmmSim.Kernel.PageDesc DescAt(Machine m, Process p, ulong addr) =>
        ref m.Kernel.Memmap.PfnToPage(new HmmSim.Kernel.Pfn(MmTestHelpers.Pfn(p.PagemapEntry(addr)))).Desc;

    [Fact]
    public void ACorruptMapcountInTheTouchedRangeIsCaughtByTheAccessThatTouchesIt()
    {
        var m = new Machine(new MachineConfig());
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, 64 * 4096, flags: MmTestHelpers.PrivAnon);
        Assert.Equal(Errno.None, p.Madvise(a, 64 * 4096, Advice.NoHugePage));
        p.WriteInt32(a + 5 * 4096, 1);
        long full = m.InvariantChecks;
        DescAt(m, p, a + 5 * 4096).MapCount = 0;
        Assert.Throws<KernelBugException>(() => p.ReadInt32(a + 5 * 4096));
        Assert.Equal(full, m.InvariantChecks);   // it was the local check, not a walk of the machine
        DescAt(m, p, a + 5 * 4096).MapCount = 1;
        m.Dispose();
    }

    [Fact]
    public void AnAccessOverManyPagesFindsACorruptionPastItsFirstFew()
    {
        // Sixteen pages: more than the check's short array holds before it indexes its counts.
        var m = new Machine(new MachineConfig());
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, 64 * 4096, flags: MmTestHelpers.PrivAnon);
        Assert.Equal(Errno.None, p.Madvise(a, 64 * 4096, Advice.NoHugePage));
        var buf = new byte[16 * 4096];
        buf.AsSpan().Fill(7);
        p.Write(a, buf);
        p.Read(a, buf);   // a clean check over all sixteen first
        DescAt(m, p, a + 12 * 4096).MapCount = 0;
        var e = Assert.Throws<KernelBugException>(() => p.Read(a, buf));
        Assert.Contains("mapcount 0", e.Message);
        DescAt(m, p, a + 12 * 4096).MapCount = 1;
        p.Read(a, buf);
        // A one-page access after the indexed one counts from a clean start.
        DescAt(m, p, a + 3 * 4096).MapCount = 0;
        Assert.Throws<KernelBugException>(() => p.ReadInt32(a + 3 * 4096));
        DescAt(m, p, a + 3 * 4096).MapCount = 1;
        Assert.Equal(0x07070707, p.ReadInt32(a + 3 * 4096));
        m.Dispose();
    }

    [Fact]
    public void ACorruptionOutsideTheTouchedRangeIsCaughtAtTeardown()
    {
        var m = new Machine(new MachineConfig());
        var p = m.CreateProcess();
        const ulong far = 4UL << 20;   // two PMDs away: outside the range a load of page 0 checks
        ulong a = MmTestHelpers.Map(p, 2 * far);
        Assert.Equal(Errno.None, p.Madvise(a, 2 * far, Advice.NoHugePage));
        p.WriteInt32(a, 1);
        p.WriteInt32(a + far, 2);
        DescAt(m, p, a + far).MapCount = 2;   // one PTE maps it: too high, and elsewhere
        Assert.Equal(1, p.ReadInt32(a));      // the access to page 0 does not look that far
        var e = Assert.Throws<KernelBugException>(() => m.Dispose());
        Assert.Contains("mapcount 2", e.Message);
    }
}
