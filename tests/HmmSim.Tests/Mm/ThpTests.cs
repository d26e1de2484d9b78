using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class ThpTests
{
    [Fact]
    public void WriteFaultInHugePageRegionAllocatesThp()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h + 17 * PageSize, 1);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
        Assert.Equal(1, m.VmStat["nr_anon_transparent_hugepages"]);
        ulong first = Pfn(p.PagemapEntry(h));
        Assert.Equal(0UL, first % 512);
        for (ulong i = 0; i < 512; i += 51)
            Assert.Equal(first + i, Pfn(p.PagemapEntry(h + i * PageSize)));
        Assert.True(Exclusive(p.PagemapEntry(h)));
    }

    [Fact]
    public void ThpPolicyNeverNeverAllocatesThp()
    {
        using var m = new Machine(new MachineConfig { Thp = ThpPolicy.Never });
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h, 1);
        Assert.Equal(0, m.VmStat["thp_fault_alloc"]);
        Assert.Equal(1, p.ReadInt32(h));
    }

    [Fact]
    public void ThpPolicyAlwaysAllocatesThpWithoutAdvice()
    {
        using var m = new Machine(new MachineConfig { Thp = ThpPolicy.Always });
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        p.WriteInt32(h, 1);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
    }

    [Fact]
    public void ThpIsNotUsedWhenVmaDoesNotCoverAlignedPmd()
    {
        using var m = new Machine(new MachineConfig { Thp = ThpPolicy.Always });
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize + PmdSize / 2);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        Assert.Equal(Errno.None, p.Munmap(h + PageSize, PmdSize));   // no aligned 2 MiB left in the VMA
        p.WriteInt32(h, 1);
        Assert.Equal(0, m.VmStat["thp_fault_alloc"]);
    }

    [Fact]
    public void MunmapOfWholeThpFreesItWithoutSplit()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h, 1);
        long free = m.VmStat["nr_free_pages"];
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Munmap(h, PmdSize));
        Assert.Equal(splits, m.VmStat["thp_split_pmd"]);
        Assert.Equal(0, m.VmStat["nr_anon_transparent_hugepages"]);
        Assert.Equal(free + 512, m.VmStat["nr_free_pages"]);   // the page tables stay: the VMA around is still mapped
    }

    [Fact]
    public void PartialMunmapOfThpKeepsRemainingPagesReadable()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i);
        Assert.Equal(Errno.None, p.Munmap(h, PmdSize / 2));
        for (ulong i = 256; i < 512; i++)
            Assert.Equal((int)i, p.ReadInt32(h + i * PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(h));
    }

    [Fact]
    public void MadviseCollapseBuildsThpFromSmallPages()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i + 7);
        Assert.Equal(0, m.VmStat["nr_anon_transparent_hugepages"]);
        Assert.Equal(Errno.None, p.Madvise(h, PmdSize, Advice.Collapse));
        Assert.Equal(1, m.VmStat["nr_anon_transparent_hugepages"]);
        for (ulong i = 0; i < 512; i++)
            Assert.Equal((int)i + 7, p.ReadInt32(h + i * PageSize));
        Assert.Equal(Pfn(p.PagemapEntry(h)) + 511, Pfn(p.PagemapEntry(h + 511 * PageSize)));
    }
}
