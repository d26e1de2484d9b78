namespace HmmSim.Tests.Mm;

public class SmokeTests
{
    [Fact]
    public void AnonWriteReadForkCowAndExit()
    {
        using var m = new Machine();
        var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 1 << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out var a));
        Assert.Equal(0, p.ReadInt32(a));
        p.WriteInt32(a + 8, 42);
        Assert.Equal(42, p.ReadInt32(a + 8));
        var c = p.Fork();
        Assert.Equal(42, c.ReadInt32(a + 8));
        c.WriteInt32(a + 8, 7);
        Assert.Equal(42, p.ReadInt32(a + 8));
        Assert.Equal(7, c.ReadInt32(a + 8));
        c.Dispose();
        p.Dispose();
    }

    [Fact]
    public void ThpFaultAndPartialMunmap()
    {
        using var m = new Machine();
        var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 4 << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out var a));
        ulong h = (a + (2UL << 20) - 1) & ~((2UL << 20) - 1);
        Assert.Equal(Errno.None, p.Madvise(h, 2 << 20, Advice.HugePage));
        p.WriteInt32(h, 5);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
        var c = p.Fork();
        c.WriteInt32(h + 4096, 9);
        Assert.Equal(Errno.None, p.Munmap(h + (1 << 20), 4096));
        Assert.Equal(5, p.ReadInt32(h));
        Assert.Equal(0, p.ReadInt32(h + 4096));
        Assert.Equal(9, c.ReadInt32(h + 4096));
        p.Dispose();
        c.Dispose();
    }
}
