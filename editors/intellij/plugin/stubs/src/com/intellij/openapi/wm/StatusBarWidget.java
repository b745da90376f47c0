/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/openapi/wm/StatusBarWidget.kt (the @JvmDefault form: ID(), getPresentation(), install(StatusBar), dispose(); WidgetPresentation, TextPresentation)
 */
package com.intellij.openapi.wm;

import com.intellij.openapi.Disposable;
import com.intellij.util.Consumer;
import java.awt.event.MouseEvent;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public interface StatusBarWidget extends Disposable {
    @NotNull
    String ID();

    default @Nullable WidgetPresentation getPresentation() {
        return null;
    }

    default void install(@NotNull StatusBar statusBar) {}

    @Override
    default void dispose() {}

    interface WidgetPresentation {
        @Nullable
        String getTooltipText();

        default @Nullable Consumer<MouseEvent> getClickConsumer() {
            return null;
        }
    }

    interface TextPresentation extends WidgetPresentation {
        @NotNull
        String getText();

        float getAlignment();
    }
}
