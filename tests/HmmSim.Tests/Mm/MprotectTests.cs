using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class MprotectTests
{
    [Fact]
    public void MprotectOfUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Mprotect(a + 8, PageSize, Prot.Read));
    }

    [Fact]
    public void MprotectOfLengthZeroSucceedsAndChangesNothing()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.None, p.Mprotect(a, 0, Prot.None));
        p.WriteInt32(a, 1);
        Assert.Equal(1, p.ReadInt32(a));
    }

    [Fact]
    public void MprotectOfHugeLengthIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.ENOMEM, p.Mprotect(a, ulong.MaxValue - PageSize, Prot.Read));
    }

    [Fact]
    public void MprotectOfHoleIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.ENOMEM, p.Mprotect(0x4000_0000, PageSize, Prot.Read));
    }

    [Fact]
    public void MprotectOverRangeWithHoleIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(Errno.ENOMEM, p.Mprotect(a, 3 * PageSize, Prot.Read));
    }

    [Fact]
    public void MprotectWithUnknownProtBitIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mprotect(a, PageSize, (Prot)0x40));
    }

    [Fact]
    public void MprotectReadOnlyMakesWritesSegfaultButKeepsData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        p.WriteInt32(a, 42);
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Prot.Read));
        Assert.Equal(42, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
        p.WriteInt32(a + PageSize, 2);
        Assert.Equal(42, p.ReadInt32(a));
    }

    [Fact]
    public void MprotectNoneMakesReadsSegfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 3);
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Prot.None));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Prot.Read));
        Assert.Equal(3, p.ReadInt32(a));
    }

    [Fact]
    public void MprotectAddingWriteToPrivateReadOnlyMappingIsAllowed()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Prot.Read);
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Rw));
        p.WriteInt32(a, 9);
        Assert.Equal(9, p.ReadInt32(a));
    }

    [Fact]
    public void MprotectAddingWriteToSharedFileMappingIsAllowedForWritableFile()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Prot.Read, MapFlags.Shared, out var a, f));
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Rw));
        p.WriteInt32(a, 11);
        Span<byte> b = stackalloc byte[4];
        Assert.Equal(Errno.None, f.Pread(b, 0, out _));
        Assert.Equal(11, BitConverter.ToInt32(b));
    }

    [Fact]
    public void MprotectInsideThpSplitsPmdAndKeepsData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i + 1);
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Mprotect(h + 8 * PageSize, 4 * PageSize, Prot.Read));
        Assert.Equal(splits + 1, m.VmStat["thp_split_pmd"]);
        for (ulong i = 0; i < 512; i++)
            Assert.Equal((int)i + 1, p.ReadInt32(h + i * PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(h + 9 * PageSize, 0));
        p.WriteInt32(h + 20 * PageSize, -1);
        Assert.Equal(-1, p.ReadInt32(h + 20 * PageSize));
    }

    [Fact]
    public void MprotectOfWholeThpDoesNotSplitIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h, 1);
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Mprotect(h, PmdSize, Prot.Read));
        Assert.Equal(splits, m.VmStat["thp_split_pmd"]);
        Assert.Equal(1, p.ReadInt32(h));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(h, 2));
    }

    [Fact]
    public void MprotectAcrossVmaThatMergesWithItsNextNeighbourSucceeds()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        p.WriteInt32(a, 1);
        Assert.Equal(Errno.None, p.Mprotect(a + 2 * PageSize, 2 * PageSize, Prot.Read));
        // The first VMA becomes read-only, merges with the second, and the walk must go on from there.
        Assert.Equal(Errno.None, p.Mprotect(a, 4 * PageSize, Prot.Read));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a + 3 * PageSize, 1));
        Assert.Equal(1, p.ReadInt32(a));
    }

    [Fact]
    public void MprotectOverHoleChangesVmasBeforeTheHole()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(Errno.ENOMEM, p.Mprotect(a, 3 * PageSize, Prot.Read));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
        p.WriteInt32(a + 2 * PageSize, 1);
    }

    [Fact]
    public void MprotectWithProtSemIsAccepted()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.None, p.Mprotect(a, PageSize, Prot.Read | (Prot)0x8));   // PROT_SEM
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
    }

    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void CpuReadOfPmdMappedThpAfterMprotectNoneSegfaults(Architecture arch)
    {
        using var m = new Machine(new MachineConfig { Architecture = arch });
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h, 7);
        Assert.True(Present(p.PagemapEntry(h)));
        Assert.Equal(Errno.None, p.Mprotect(h, PmdSize, Prot.None));
        var ex = Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(h + PageSize));
        Assert.Equal(h + PageSize, ex.Address);
    }
}
