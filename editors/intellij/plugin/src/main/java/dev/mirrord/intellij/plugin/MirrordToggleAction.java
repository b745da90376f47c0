package dev.mirrord.intellij.plugin;

import com.intellij.openapi.actionSystem.ActionUpdateThread;
import com.intellij.openapi.actionSystem.AnActionEvent;
import com.intellij.openapi.actionSystem.ToggleAction;
import org.jetbrains.annotations.NotNull;

/** The toolbar toggle: when on, run configurations start under mirrord (the status bar entry flips the same state). */
public final class MirrordToggleAction extends ToggleAction {
    @Override
    public boolean isSelected(@NotNull AnActionEvent e) {
        return e.getProject() != null && MirrordProjectService.of(e.getProject()).enabled();
    }

    @Override
    public void setSelected(@NotNull AnActionEvent e, boolean state) {
        if (e.getProject() != null) {
            MirrordProjectService.of(e.getProject()).setEnabled(state);
        }
    }

    @Override
    public @NotNull ActionUpdateThread getActionUpdateThread() {
        return ActionUpdateThread.BGT;
    }
}
