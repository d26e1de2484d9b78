using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class ShmemTests
{
    private static int PreadInt32(ShmemFile f, ulong offset)
    {
        Span<byte> b = stackalloc byte[4];
        Assert.Equal(Errno.None, f.Pread(b, offset, out var n));
        Assert.Equal(4UL, n);
        return BitConverter.ToInt32(b);
    }

    [Fact]
    public void SharedFileMappingIsCoherentBetweenTwoProcesses()
    {
        using var m = new Machine();
        using var f = m.CreateFile(4 * PageSize);
        using var p = m.CreateProcess();
        using var q = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 4 * PageSize, Rw, MapFlags.Shared, out var a, f));
        Assert.Equal(Errno.None, q.Mmap(0, 4 * PageSize, Rw, MapFlags.Shared, out var b, f));
        p.WriteInt32(a + 2 * PageSize, 21);
        Assert.Equal(21, q.ReadInt32(b + 2 * PageSize));
        q.WriteInt32(b, 22);
        Assert.Equal(22, p.ReadInt32(a));
    }

    [Fact]
    public void PwriteIsVisibleThroughMapping()
    {
        using var m = new Machine();
        using var f = m.CreateFile(2 * PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PageSize, Rw, MapFlags.Shared, out var a, f));
        Assert.Equal(0, p.ReadInt32(a + PageSize));
        Assert.Equal(Errno.None, f.Pwrite(BitConverter.GetBytes(31), PageSize, out var w));
        Assert.Equal(4UL, w);
        Assert.Equal(31, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MappedWriteIsVisibleThroughPread()
    {
        using var m = new Machine();
        using var f = m.CreateFile(2 * PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PageSize, Rw, MapFlags.Shared, out var a, f));
        p.WriteInt32(a + PageSize + 8, 32);
        Assert.Equal(32, PreadInt32(f, PageSize + 8));
    }

    [Fact]
    public void MappingAtFileOffsetSeesThatPartOfTheFile()
    {
        using var m = new Machine();
        using var f = m.CreateFile(4 * PageSize);
        Assert.Equal(Errno.None, f.Pwrite(BitConverter.GetBytes(3), 3 * PageSize, out _));
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Prot.Read, MapFlags.Shared, out var a, f, 3 * PageSize));
        Assert.Equal(3, p.ReadInt32(a));
    }

    [Fact]
    public void PrivateFileMappingWriteIsCowAndFileIsUnchanged()
    {
        using var m = new Machine();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, f.Pwrite(BitConverter.GetBytes(40), 0, out _));
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Private, out var a, f));
        Assert.Equal(40, p.ReadInt32(a));
        p.WriteInt32(a, 41);
        Assert.Equal(41, p.ReadInt32(a));
        Assert.Equal(40, PreadInt32(f, 0));
        Assert.False(FileOrShared(p.PagemapEntry(a)));
    }

    [Fact]
    public void PrivateFileMappingSeesFileUpdatesUntilItWrites()
    {
        using var m = new Machine();
        using var f = m.CreateFile(PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Private, out var a, f));
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(Errno.None, f.Pwrite(BitConverter.GetBytes(50), 0, out _));
        Assert.Equal(50, p.ReadInt32(a));
        Assert.True(FileOrShared(p.PagemapEntry(a)));
    }

    [Fact]
    public void AccessBeyondEndOfFileIsBusError()
    {
        using var m = new Machine();
        using var f = m.CreateFile(PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 3 * PageSize, Rw, MapFlags.Shared, out var a, f));
        Assert.Equal(0, p.ReadInt32(a + PageSize - 4));
        Assert.Throws<BusErrorException>(() => p.ReadInt32(a + PageSize));
        Assert.Throws<BusErrorException>(() => p.WriteInt32(a + 2 * PageSize, 1));
    }

    [Fact]
    public void PrivateFileMappingBeyondEndOfFileIsBusError()
    {
        using var m = new Machine();
        using var f = m.CreateFile(PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PageSize, Rw, MapFlags.Private, out var a, f));
        Assert.Throws<BusErrorException>(() => p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void FileDataOutlivesCloseWhileMapped()
    {
        using var m = new Machine();
        var f = m.CreateFile(PageSize);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out var a, f));
        p.WriteInt32(a, 60);
        f.Dispose();
        Assert.Equal(60, p.ReadInt32(a));
    }

    [Fact]
    public void SharedAnonymousPagemapHasFileBitAndSamePfnInChild()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Rw, SharedAnon);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        c.WriteInt32(a, 2);
        Assert.Equal(2, p.ReadInt32(a));
        Assert.Equal(Pfn(p.PagemapEntry(a)), Pfn(c.PagemapEntry(a)));
    }

    [Fact]
    public void PwritePastEndOfFileFails()
    {
        using var m = new Machine();
        using var f = m.CreateFile(PageSize);
        Assert.NotEqual(Errno.None, f.Pwrite(new byte[8], PageSize - 4, out _));
    }
}
