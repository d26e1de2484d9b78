namespace HmmSim.Tests.Hmm;

/// <summary>A dmirror file outliving the process that opened it (a forked child still holds the fd):
/// dmirror_fault cannot take a reference on the exited mm (mmget_not_zero fails) and returns -EFAULT,
/// so device reads and writes fail instead of faulting an empty mirror again for ever.</summary>
public class ExitedMirrorTests
{
    private const ulong Pages = 8;
    private const ulong Size = Pages << 12;

    /// <summary>Runs the ioctl on another thread so that a regression (the endless fault loop) fails the
    /// test through xunit's hang guard rather than stalling the whole run.</summary>
    private static Task<DmirrorResult> Ioctl(Func<DmirrorResult> ioctl) => Task.Run(ioctl);

    [Theory(Timeout = 120_000)]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, false)]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, true)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, false)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, true)]
    public async Task DeviceAccessAfterTheMirroredProcessExitedFailsWithEfault(DevicePrivateDesign design, bool write)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        var buf = new byte[Size];
        Array.Fill(buf, (byte)0x5a);

        // While the process lives, the device faults the range into its mirror.
        Assert.Equal(new DmirrorResult(Errno.None, Pages, 1), await Ioctl(() => write ? dev.Write(a, Pages, buf) : dev.Read(a, Pages, buf)));

        var child = p.Fork();
        p.Dispose();

        // exit_mmap invalidated the whole mirror; faulting it again needs the dead mm.
        var r = await Ioctl(() => write ? dev.Write(a, Pages, buf) : dev.Read(a, Pages, buf));
        Assert.Equal(Errno.EFAULT, r.Error);
        child.Dispose();
    }
}
