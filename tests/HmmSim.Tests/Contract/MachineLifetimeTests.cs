using System.Runtime.CompilerServices;

namespace HmmSim.Tests.Contract;

/// <summary>A disposed machine returns its memory: nothing the library keeps (caches, per-thread scratch,
/// rented arrays) holds on to the kernel state, its memmap or its page data.</summary>
public class MachineLifetimeTests
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference UseAndDispose(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        var p = m.CreateProcess();
        using (var d = p.OpenDmirror(0))
        {
            Assert.Equal(Errno.None, p.Mmap(0, 4 << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
            var buf = new byte[4 << 20];
            for (int i = 0; i < buf.Length; i += 4096)
                buf[i] = (byte)(i >> 12 | 1);
            p.Write(a, buf);
            Assert.Equal(Errno.None, d.MigrateToDevice(a, 1024, buf).Error);
            p.ReadInt32(a);   // a CPU fault back from the device
            Assert.Equal(Errno.None, d.MigrateToSystem(a, 1024).Error);
        }
        var data = new WeakReference(m.Kernel.Memmap.Data);
        p.Dispose();
        m.Dispose();
        return data;
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ADisposedMachinesPageDataIsCollected(DevicePrivateDesign design)
    {
        var data = UseAndDispose(design);
        for (int i = 0; i < 3 && data.IsAlive; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
        Assert.False(data.IsAlive, "the page data of a disposed machine is still reachable");
    }
}
