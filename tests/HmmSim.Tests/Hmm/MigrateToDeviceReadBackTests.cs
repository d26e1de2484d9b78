namespace HmmSim.Tests.Hmm;

/// <summary>What MIGRATE_TO_DEV hands back: the mirror's copy of every page of the range, in place in the
/// caller's buffer, read window by window as each window has moved. A range that starts inside a THP
/// makes every window straddle two PMDs; a short buffer still migrates everything and fails with EFAULT;
/// a page that cannot reach the mirror fails the call with ENOENT.</summary>
public class MigrateToDeviceReadBackTests
{
    private const ulong Pmd = 2UL << 20;

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    /// <summary>A SNAPSHOT byte of a page in this device's private memory (its high nibble; the low bits
    /// carry the PMD and write flags).</summary>
    private static bool OnThisDevice(byte b) => (DmirrorProt)(b & 0xF0) == DmirrorProt.DevPrivateLocal;

    private static (ulong Addr, byte[] Data) MapThps(Process p, int pmds)
    {
        Assert.Equal(Errno.None, p.Mmap(0, (ulong)(pmds + 1) * Pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + Pmd - 1) & ~(Pmd - 1);
        Assert.Equal(Errno.None, p.Madvise(a, (ulong)pmds * Pmd, Advice.HugePage));
        var data = new byte[(ulong)pmds * Pmd];
        for (int i = 0; i < data.Length; i += 64)
            data[i] = (byte)(i >> 6 ^ i >> 12);
        p.Write(a, data);
        return (a, data);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void ARangeStartingInsideATHPReturnsEveryPageInPlace(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        var (a, data) = MapThps(p, 4);
        // 1,000 pages from page 300 of the first THP: windows of 512 pages that each split two THPs.
        const int first = 300, n = 1000;
        var mirror = new byte[n * 4096];
        var r = d.MigrateToDevice(a + first * 4096UL, n, mirror);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal((ulong)n, r.CPages);
        Assert.Equal(data.AsSpan(first * 4096, mirror.Length).ToArray(), mirror);
        // And the CPU still reads every byte of the four PMDs, the migrated pages coming back.
        var back = new byte[data.Length];
        p.Read(a, back);
        Assert.Equal(data, back);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AShortBufferGetsWhatFitsAndEfaultAfterEveryWindowHasMoved(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        var (a, data) = MapThps(p, 2);
        var mirror = new byte[700 * 4096];
        var r = d.MigrateToDevice(a, 1024, mirror);
        Assert.Equal(Errno.EFAULT, r.Error);
        Assert.Equal(data.AsSpan(0, mirror.Length).ToArray(), mirror);
        // Both PMDs moved, the second one too although none of it fitted in the buffer.
        var prot = new byte[1024];
        Assert.Equal(Errno.None, d.Snapshot(a, 1024, prot).Error);
        Assert.All(prot, b => Assert.True(OnThisDevice(b)));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void APageThatCannotBeAllocatedOnTheDeviceFailsTheCallWithEnoent(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, 3 * 512 * 4096, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        Assert.Equal(Errno.None, p.Madvise(a, 3 * 512 * 4096, Advice.NoHugePage));
        p.Write(a, new byte[3 * 512 * 4096]);
        // FAIL_ALLOC: the first device allocation fails, so page 0 stays in RAM and is not mirrored.
        Assert.Equal(Errno.None, d.SetFlags(DmirrorFlags.FailAlloc).Error);
        var r = d.MigrateToDevice(a, 3 * 512, new byte[3 * 512 * 4096]);
        Assert.Equal(Errno.ENOENT, r.Error);
        var prot = new byte[3 * 512];
        Assert.Equal(Errno.None, d.Snapshot(a, 3 * 512, prot).Error);
        Assert.False(OnThisDevice(prot[0]));
        // Every other page, in all three windows, moved.
        Assert.All(prot.AsSpan(1).ToArray(), b => Assert.True(OnThisDevice(b)));
    }
}
