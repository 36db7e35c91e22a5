using System.CommandLine;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary><c>cmfs init</c>: validates the config and creates the volume's state and facet folders. Idempotent.</summary>
internal static class InitCommand
{
    public static Command Create(CommandContext context, Option<string?> config)
    {
        var command = new Command("init", "Create the volume's state folder and facet folders (optional: mount does it too)");
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            bool existed = CommandContext.IsInitialised(volume.Options.StateDir);
            if (volume.IsEmbeddedDefault && !existed)
            {
                await context.AnnounceEmbeddedDefaultAsync(volume);
            }
            using IHost host = context.BuildHost(LogLevel.Warning);
            await using (MirrorVolume v = await context.OpenVolumeAsync(volume, host, cancellationToken))
            {
                VolumeStatus status = v.GetStatus();
                await context.Out.WriteLineAsync(existed
                    ? $"volume '{status.Name}' already initialised at {status.StateDir}"
                    : $"volume '{status.Name}' initialised at {status.StateDir} (block size {Units.FormatSize(status.BlockSize)})");
                foreach (FacetStatus f in status.Facets)
                {
                    await context.Out.WriteLineAsync($"  {f.Name}: {f.Role.ToString().ToLowerInvariant()} {f.Kind}, {f.State}");
                }
            }
            return CmfsCli.Ok;
        });
        return command;
    }
}
