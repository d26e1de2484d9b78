using System.Diagnostics;
using HmmSim.Kernel;

namespace HmmSim.Cli.Workloads;

/// <summary>`hmmsim bench register`: registering device-private memory in each design — how long it
/// takes and what it costs the model, beside the struct pages the kernel would spend.</summary>
public static class RegisterWorkload
{
    public sealed record Row(DevicePrivateDesign Design, ulong Bytes, Errno Error, double Ms, long ModelBytes, long KernelStructPageBytes, long ModelBytesAfterFirstUse);

    public static List<Row> Run(ulong bytes)
    {
        var rows = new List<Row>();
        foreach (var design in Enum.GetValues<DevicePrivateDesign>())
        {
            using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false, HugetlbPages = 0 });
            var k = m.Kernel;
            var pgmap = new DevPagemap(MemoryType.DevicePrivate, new object(), new DevPagemapOps
            {
                FolioFree = _ => { },
                MigrateToRam = _ => VmFaultResult.Sigbus,
            });
            long model0 = m.VmStat["struct_page_bytes_model"], kernel0 = m.VmStat["struct_page_bytes_kernel"];
            var sw = Stopwatch.StartNew();
            var err = (Errno)Memremap.AddDevicePrivateMemory(k, pgmap, bytes, "bench");
            sw.Stop();
            long model = m.VmStat["struct_page_bytes_model"] - model0, kernel = m.VmStat["struct_page_bytes_kernel"] - kernel0;
            long afterUse = model;
            if (err == Errno.None)
            {
                // Touch one page at each end: only their sections get a memmap.
                foreach (ulong i in new[] { 0UL, pgmap.NrPages - 1 })
                {
                    var f = Memremap.ZoneDeviceFolioInit(Memremap.PageOf(k, pgmap, i), 0);
                    f.Unlock();
                    f.Put();
                }
                afterUse = m.VmStat["struct_page_bytes_model"] - model0;
                Memremap.RemoveDevicePrivateMemory(k, pgmap);
            }
            rows.Add(new Row(design, bytes, err, sw.Elapsed.TotalMilliseconds, model, kernel, afterUse));
        }
        return rows;
    }
}
