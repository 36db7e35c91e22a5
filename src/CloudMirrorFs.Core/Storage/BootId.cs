namespace CloudMirrorFs.Storage;

/// <summary>
/// Which boot of the machine this process runs in. A volume that was not closed and finds another boot id at its next
/// open went through a machine crash or power loss, not only a killed process: what was only in the OS cache then is
/// lost too.
/// </summary>
public static class BootId
{
    private const string LinuxPath = "/proc/sys/kernel/random/boot_id";

    /// <summary>The kernel's boot id on Linux; null where the OS does not give one (the caller then assumes the worst).</summary>
    public static string? Current { get; } = Read();

    private static string? Read()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            string id = File.ReadAllText(LinuxPath).Trim();
            return id.Length > 0 ? id : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
