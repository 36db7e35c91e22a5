namespace CloudMirrorFs.Mount;

/// <summary>What the OS has mounted where.</summary>
public static class MountPoints
{
    /// <summary>True when a file system is mounted at <paramref name="path"/> (Linux: <c>/proc/self/mounts</c>); false on other systems.</summary>
    public static bool IsMounted(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }
        foreach (string line in File.ReadLines("/proc/self/mounts"))
        {
            string[] fields = line.Split(' ');
            if (fields.Length > 2 && Unescape(fields[1]) == path)
            {
                return true;
            }
        }
        return false;
    }

    private static string Unescape(string field) => field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
        .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
