using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class MadviseTests
{
    [Fact]
    public void MadviseOfUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Madvise(a + 1, PageSize, Advice.DontNeed));
    }

    [Fact]
    public void MadviseOfLengthZeroSucceeds()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        Assert.Equal(Errno.None, p.Madvise(a, 0, Advice.DontNeed));
        Assert.Equal(1, p.ReadInt32(a));
    }

    [Fact]
    public void MadviseWithLengthWrappingAroundIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Madvise(a, ulong.MaxValue - 10, Advice.DontNeed));
    }

    [Fact]
    public void MadviseWithUnknownAdviceIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Madvise(a, PageSize, (Advice)999));
    }

    [Fact]
    public void MadviseOfHoleIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.ENOMEM, p.Madvise(0x4000_0000, PageSize, Advice.DontNeed));
    }

    [Fact]
    public void MadviseDontNeedOverHoleStillZapsMappedPartsAndReturnsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        p.WriteInt32(a, 1);
        p.WriteInt32(a + 2 * PageSize, 3);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(Errno.ENOMEM, p.Madvise(a, 3 * PageSize, Advice.DontNeed));
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + 2 * PageSize));
    }

    [Fact]
    public void MadviseDontNeedOnAnonymousMemoryReadsZerosAfterwards()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        for (ulong i = 0; i < 4; i++)
            p.WriteInt32(a + i * PageSize, 9);
        Assert.Equal(Errno.None, p.Madvise(a + PageSize, 2 * PageSize, Advice.DontNeed));
        Assert.Equal(9, p.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + PageSize));
        Assert.Equal(0, p.ReadInt32(a + 2 * PageSize));
        Assert.Equal(9, p.ReadInt32(a + 3 * PageSize));
    }

    [Fact]
    public void MadviseDontNeedOnSharedAnonymousKeepsData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize, Rw, SharedAnon);
        p.WriteInt32(a + PageSize, 33);
        Assert.Equal(Errno.None, p.Madvise(a, 2 * PageSize, Advice.DontNeed));
        Assert.False(Present(p.PagemapEntry(a + PageSize)));
        Assert.Equal(33, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MadviseDontNeedOnSharedFileMappingKeepsFileData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out var a, f));
        p.WriteInt32(a, 44);
        Assert.Equal(Errno.None, p.Madvise(a, PageSize, Advice.DontNeed));
        Assert.Equal(44, p.ReadInt32(a));
    }

    [Fact]
    public void MadviseDontNeedOnPrivateFileMappingDropsCowCopyAndRereadsFile()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, f.Pwrite(BitConverter.GetBytes(5), 0, out _));
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Private, out var a, f));
        p.WriteInt32(a, 6);
        Assert.Equal(Errno.None, p.Madvise(a, PageSize, Advice.DontNeed));
        Assert.Equal(5, p.ReadInt32(a));
    }

    [Fact]
    public void MadviseDontNeedOfWholeThpFreesIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h, 1);
        Assert.Equal(1, m.VmStat["nr_anon_transparent_hugepages"]);
        Assert.Equal(Errno.None, p.Madvise(h, PmdSize, Advice.DontNeed));
        Assert.Equal(0, m.VmStat["nr_anon_transparent_hugepages"]);
        Assert.Equal(0, p.ReadInt32(h));
    }

    [Fact]
    public void MadviseDontNeedOfPartOfThpSplitsAndZerosOnlyThatPart()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, 1 + (int)i);
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Madvise(h + 4 * PageSize, 2 * PageSize, Advice.DontNeed));
        Assert.Equal(splits + 1, m.VmStat["thp_split_pmd"]);
        for (ulong i = 0; i < 512; i++)
            Assert.Equal(i is 4 or 5 ? 0 : 1 + (int)i, p.ReadInt32(h + i * PageSize));
    }

    [Fact]
    public void MadviseFreeReturnsZeroAndDataStaysReadable()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        p.WriteInt32(a, 12);
        p.WriteInt32(a + PageSize, 13);
        Assert.Equal(Errno.None, p.Madvise(a, 2 * PageSize, Advice.Free));
        Assert.Equal(12, p.ReadInt32(a));
        Assert.Equal(13, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MadviseFreeOnSharedMappingIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Rw, SharedAnon);
        Assert.Equal(Errno.EINVAL, p.Madvise(a, PageSize, Advice.Free));
    }

    [Fact]
    public void MadviseHugePageEnablesThpFault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PmdSize);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        p.WriteInt32(h, 1);
        Assert.Equal(0, m.VmStat["thp_fault_alloc"]);   // policy madvise: no THP without the advice
        Assert.Equal(Errno.None, p.Madvise(h + PmdSize, PmdSize, Advice.HugePage));
        p.WriteInt32(h + PmdSize, 2);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
        Assert.Equal(2, p.ReadInt32(h + PmdSize));
    }

    [Fact]
    public void MadviseNoHugePageDisablesThpFault()
    {
        using var m = new Machine(new MachineConfig { Thp = ThpPolicy.Always });
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize);
        ulong h = (a + PmdSize - 1) & ~(PmdSize - 1);
        Assert.Equal(Errno.None, p.Madvise(h, PmdSize, Advice.NoHugePage));
        p.WriteInt32(h, 1);
        Assert.Equal(0, m.VmStat["thp_fault_alloc"]);
    }
}
