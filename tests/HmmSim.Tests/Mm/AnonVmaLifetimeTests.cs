namespace HmmSim.Tests.Mm;

/// <summary>An anon_vma goes when its last VMA does (put_anon_vma): mapping, writing and unmapping in a loop
/// leaves no rmap owner behind, and the rmap of folios still mapped through another VMA of the fork
/// family keeps working after the VMA that faulted them has gone.</summary>
public class AnonVmaLifetimeTests
{
    private const ulong Size = 64UL * 4096;

    private static void MapWriteUnmap(Process p, byte[] data)
    {
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        p.Write(a, data);
        Assert.Equal(Errno.None, p.Munmap(a, Size));
    }

    [Fact]
    public void MappingWritingAndUnmappingInALoopLeavesNoAnonVmaBehind()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        var p = m.CreateProcess();
        var data = new byte[Size];
        Array.Fill(data, (byte)0x5a);
        MapWriteUnmap(p, data);
        int live = m.Kernel.Memmap.Mappings.CountLive();
        for (int i = 0; i < 500; i++)
            MapWriteUnmap(p, data);
        // Each round's anon_vma went with its VMA: the table of rmap owners holds no more than before.
        Assert.Equal(live, m.Kernel.Memmap.Mappings.CountLive());
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void AChildsCowPagesMigrateAfterTheParentUnmappedTheVmaThatFaultedThem(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var parent = m.CreateProcess();
        Assert.Equal(Errno.None, parent.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        var data = new byte[Size];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(i * 13 + (i >> 12));
        parent.Write(a, data);
        var child = parent.Fork();
        // The parent's VMA goes; the child's still maps the folios, which name the parent's anon_vma.
        Assert.Equal(Errno.None, parent.Munmap(a, Size));
        using var dev = child.OpenDmirror(0);
        var mirror = new byte[Size];
        var r = dev.MigrateToDevice(a, Size >> 12, mirror);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(data, mirror);
        var back = new byte[Size];
        child.Read(a, back);
        Assert.Equal(data, back);
        Assert.Equal(Errno.None, child.Munmap(a, Size));
    }
}
